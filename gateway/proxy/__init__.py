"""The OpenAI-compatible request path: controller, pipeline, streaming relay, upstream client."""
