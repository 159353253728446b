"""OneKey's HTTP edge: OpenAI REST in, one Forward RPC to the core, bytes back."""
