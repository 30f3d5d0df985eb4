"""Issue introspection credentials for a resource server (an MCP server, an API)."""

from django.core.management.base import BaseCommand

from oauthprovider.introspection import resource_server_create


class Command(BaseCommand):
    help = "Create a resource server allowed to call /getKeys/introspect; prints its client_id and secret once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="A name operators recognise, e.g. 'docs MCP server'.")

    def handle(self, *args, name: str, **options) -> None:
        _, client_id, secret = resource_server_create(name=name[:100])
        self.stdout.write(f"client_id: {client_id}")
        self.stdout.write(f"secret:    {secret}")
        self.stdout.write("The secret is shown once; only its hash is stored.")
