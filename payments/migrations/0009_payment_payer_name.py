from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0008_payment_payer"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="payer_name",
            field=models.CharField(
                blank=True, default="", max_length=128, verbose_name="payer's name"
            ),
        ),
    ]
