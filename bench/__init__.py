"""Side-by-side benchmark of durable against the official durabletask SDK; run it with `python -m bench`."""
