"""Services: every rule that changes the package domain lives here, not in views or models."""
