import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Fine-tuning runs, model-version lineage and metrics, A/B generation jobs."""

    dependencies = [
        ("editorial", "0005_exports"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='generationjob',
            name='ab_arm',
            field=models.CharField(blank=True, max_length=1),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='data_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.CreateModel(
            name='ABTest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=200)),
                ('seed', models.BigIntegerField(default=0)),
                ('kinds', models.JSONField(default=list)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('model_a', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='editorial.modelversion')),
                ('model_b', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='editorial.modelversion')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'A/B test',
                'ordering': ['-created_at'],
            },
        ),
        migrations.AddField(
            model_name='generationjob',
            name='ab_test',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to='editorial.abtest'),
        ),
        migrations.CreateModel(
            name='FineTuneRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='Name of the new model version.', max_length=200)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='queued', max_length=20)),
                ('hyperparameters', models.JSONField(default=dict)),
                ('filters', models.JSONField(blank=True, default=dict)),
                ('data_hash', models.CharField(blank=True, max_length=64)),
                ('train_records', models.PositiveIntegerField(default=0)),
                ('validation_records', models.PositiveIntegerField(default=0)),
                ('step', models.PositiveIntegerField(default=0)),
                ('total_steps', models.PositiveIntegerField(default=0)),
                ('loss', models.FloatField(blank=True, null=True)),
                ('progress', models.JSONField(blank=True, default=list)),
                ('metrics', models.JSONField(blank=True, default=dict)),
                ('output_path', models.CharField(blank=True, max_length=1000)),
                ('error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('base', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='finetune_runs', to='editorial.modelversion')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('result', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='editorial.modelversion')),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
    ]
