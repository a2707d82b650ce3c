"""localarm: a local, stateful Azure Resource Manager for Microsoft.Network (a test tool, never deployed)."""
