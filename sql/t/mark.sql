INSERT INTO step_marks VALUES (1);
SELECT pg_sleep(0.6);
