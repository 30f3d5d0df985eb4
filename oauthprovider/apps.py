from django.apps import AppConfig


class OAuthProviderConfig(AppConfig):
    name = "oauthprovider"
    verbose_name = "OAuth provider"
