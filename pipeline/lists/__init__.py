"""Lists: rankings, each user's favorites and picks, onboarding, placing a changed movie."""
