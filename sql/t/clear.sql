DELETE FROM public.items;
