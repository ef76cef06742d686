"""What the request path reads: one immutable snapshot behind one reference, rebuilt whole, swapped at once."""
