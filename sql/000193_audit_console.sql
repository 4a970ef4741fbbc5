-- The console's actions and its users and roles go to the audit trail too.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- Every console action (cancel, rerun, reload, trigger, login …) is recorded through
-- console.actions; each row is chained into audit.events at its commit.
CREATE FUNCTION audit.on_console_action() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM audit.append(NEW.actor, NEW.address, 'console.' || NEW.action,
    CASE WHEN NEW.run_id IS NOT NULL THEN 'run:' || NEW.run_id ELSE 'console' END,
    NEW.detail || jsonb_strip_nulls(jsonb_build_object('new_run', NEW.new_run_id)));
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER actions_audit AFTER INSERT ON console.actions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit.on_console_action();

-- A user created, removed, or given another role or password (never the hash itself). The actor
-- is the session setting erp.actor when the caller sets it, else the database user.
CREATE FUNCTION audit.on_console_user() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_actor text := coalesce(nullif(current_setting('erp.actor', true), ''), session_user);
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM audit.append(v_actor, '', 'user.created', 'user:' || NEW.name, jsonb_build_object('role', NEW.role));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM audit.append(v_actor, '', 'user.deleted', 'user:' || OLD.name, jsonb_build_object('role', OLD.role));
  ELSE
    PERFORM audit.append(v_actor, '', 'user.changed', 'user:' || NEW.name,
      jsonb_strip_nulls(jsonb_build_object(
        'renamed_from', CASE WHEN NEW.name <> OLD.name THEN OLD.name END,
        'role', CASE WHEN NEW.role <> OLD.role THEN jsonb_build_object('from', OLD.role, 'to', NEW.role) END,
        'password_changed', CASE WHEN NEW.password_hash <> OLD.password_hash THEN true END)));
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OF name, role, password_hash OR DELETE ON console.users
  FOR EACH ROW EXECUTE FUNCTION audit.on_console_user();
