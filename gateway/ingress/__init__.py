"""Client-facing wire formats other than OpenAI's, translated to and from the OpenAI chat schema."""
