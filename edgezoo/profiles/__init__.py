"""Target profiles shipped as package data (the top-level targets/ folder links here)."""
