from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from accounts.lockout import raise_locked_out

        user_locked_out.connect(raise_locked_out, dispatch_uid="accounts.lockout")
