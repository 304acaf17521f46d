# Takes over models_registry's VersionStage table as it is (state-only: no SQL runs).
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('models_registry', '0003_versionstage_moves_to_pipeline'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='VersionStage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('stage', models.CharField(choices=[('validate', 'Validate checkpoint'), ('generate', 'Generate samples'), ('metrics', 'Compute metrics'), ('judge', 'VLM judge'), ('arena', 'Join arena')], max_length=16)),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('skipped', 'Skipped')], default='pending', max_length=10)),
                        ('done', models.PositiveIntegerField(default=0)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('reason', models.TextField(blank=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='stages', to='models_registry.modelversion')),
                    ],
                    options={
                        'db_table': 'models_registry_versionstage',
                        'ordering': ['version', 'id'],
                        'constraints': [
                            models.UniqueConstraint(fields=('version', 'stage'), name='stage_unique_per_version'),
                            models.CheckConstraint(condition=models.Q(('stage__in', ['validate', 'generate', 'metrics', 'judge', 'arena'])), name='stage_name_valid'),
                            models.CheckConstraint(condition=models.Q(('state__in', ['pending', 'running', 'done', 'failed', 'skipped'])), name='stage_state_valid'),
                        ],
                    },
                ),
            ],
        ),
    ]
