"""Drop the index on AuthorizationCode.redeemed_at, so that the redemption UPDATE changes no
indexed column and PostgreSQL can make it a heap-only (HOT) update that writes no index."""

from django.db import migrations, models

_INDEX = "oauthprovider_authorizationcode_redeemed_at_28e73c85"


class Migration(migrations.Migration):
    dependencies = [
        ("oauthprovider", "0008_client_block"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {_INDEX}",
                    reverse_sql=f"CREATE INDEX {_INDEX} ON oauthprovider_authorizationcode (redeemed_at)",
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="authorizationcode",
                    name="redeemed_at",
                    field=models.DateTimeField(blank=True, null=True),
                ),
            ],
        ),
    ]
