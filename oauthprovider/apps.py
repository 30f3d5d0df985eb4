from django.apps import AppConfig


class OAuthProviderConfig(AppConfig):
    name = "oauthprovider"
    verbose_name = "OAuth provider"

    def ready(self) -> None:
        from oauthprovider import admin_resource_servers  # noqa: F401  (registers its ModelAdmin)
