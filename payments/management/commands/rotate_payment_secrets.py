"""Re-encrypt every stored merchant secret with the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart,
run this command, then remove the old keys. Rows are rewritten one short transaction each (a
row locked only while it is rewritten), so it is safe while the site runs. A row that no
configured key decrypts is reported and left as it is; the command then exits with status 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from payments import credentials
from payments.models import MerchantAccount


class Command(BaseCommand):
    help = "Re-encrypt the stored merchant secrets with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        if not credentials.configured_keys():
            self.stderr.write(
                self.style.WARNING(
                    "FIELD_ENCRYPTION_KEYS is not set: re-encrypting under the key derived "
                    "from SECRET_KEY (development only)."
                )
            )
        ids = list(MerchantAccount.objects.order_by("pk").values_list("pk", flat=True))
        total, unreadable = len(ids), []
        for done, account_id in enumerate(ids, start=1):
            with transaction.atomic():
                row = MerchantAccount.objects.select_for_update().get(pk=account_id)
                try:
                    token = credentials.reencrypt(row.secrets_encrypted)
                except credentials.CredentialsUnreadable:
                    unreadable.append(row)
                    outcome = "UNREADABLE, left as it is"
                else:
                    MerchantAccount.objects.filter(pk=row.pk).update(secrets_encrypted=token)
                    outcome = "re-encrypted"
            self.stdout.write(
                f"[{done}/{total}] {row.get_provider_display()} {row.merchant_id} "
                f"(facility {row.facility_id}): {outcome}"
            )
        self.stdout.write(
            f"{total - len(unreadable)} of {total} merchant accounts encrypted with the first key."
        )
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} merchant account(s) could not be decrypted with any configured "
                "key: enter their keys again in the admin."
            )
