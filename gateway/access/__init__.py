"""Who may do what in the admin API: roles, the one permission table, and the acting principal."""
