from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0004_rule_version_field_names"),
    ]

    operations = [
        # Existing pairs get an empty list: they keep skipping every rule.
        migrations.AddField(
            model_name="autoaccept",
            name="skipped_kinds",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The kinds of rule this pair skips. None ticked: it skips every rule.",
                verbose_name="rules skipped",
            ),
        ),
    ]
