"""Developer tools (packaging); never deployed."""
