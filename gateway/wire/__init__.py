"""Wire types every layer shares: endpoints, usage, multipart forms. They import nothing of the gateway but errors."""
