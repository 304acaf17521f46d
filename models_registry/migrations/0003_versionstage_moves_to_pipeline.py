# VersionStage moves to the pipeline app; the table and its rows stay (state-only change).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('models_registry', '0002_upload_sha256'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='VersionStage')],
            database_operations=[],
        ),
    ]
