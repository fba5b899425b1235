from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    """Use cases that orchestrate several shared apps (tenants, accounts, billing): clinic
    signup, the platform host's API, clinic settings that revoke credentials. It sits above
    them, so none of them imports another to do this (README, "Layers")."""

    name = "onboarding"
    label = "onboarding"
