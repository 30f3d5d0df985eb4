"""Issue introspection credentials for a resource server (an MCP server, an API)."""

from django.core.management.base import BaseCommand, CommandError

from oauthprovider.introspection import resource_server_create


class Command(BaseCommand):
    help = (
        "Create a resource server allowed to call /getKeys/introspect about keys handed to it; "
        "prints its client_id and secret once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="A name operators recognise, e.g. 'docs MCP server'.")
        parser.add_argument(
            "--resource",
            action="append",
            required=True,
            dest="resources",
            metavar="URL",
            help="A resource URL it serves (RFC 8707), as configured in OAUTH_EXTRA_RESOURCES; repeat for several. "
            "It learns only about keys whose grants name one of them.",
        )

    def handle(self, *args, name: str, resources: list[str], **options) -> None:
        try:
            _, client_id, secret = resource_server_create(name=name[:100], resources=resources)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"client_id: {client_id}")
        self.stdout.write(f"secret:    {secret}")
        self.stdout.write("The secret is shown once; only its hash is stored.")
