from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    label = "billing"

    def ready(self) -> None:
        """Plan limits refuse a seat beyond the plan wherever accounts adds one."""
        from accounts.hooks import seat_check_register
        from billing.services import seat_check

        seat_check_register(seat_check)
