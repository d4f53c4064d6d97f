"""Typed records for cards, target profiles, plans and manifests. They import nothing internal
but the strict loader, so any layer may use them."""
