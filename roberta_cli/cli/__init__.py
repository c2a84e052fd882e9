"""Command-line front ends (console scripts declared in setup.cfg)."""
