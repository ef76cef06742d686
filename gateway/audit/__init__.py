"""The audit log and the change feed: every control-plane change is appended with who, when, from
where, and the state before and after, and raises the control plane's generation."""
