-- The console's approver role (issue 19): sees the runs awaiting approval; ranks between operator and admin.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
ALTER TABLE console.users DROP CONSTRAINT users_role_check;
ALTER TABLE console.users ADD CONSTRAINT users_role_check CHECK (role IN ('viewer', 'operator', 'approver', 'admin'));
