"""HTTP edges shared by every controller: the one error handler and request ids."""
