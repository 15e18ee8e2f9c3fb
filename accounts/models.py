"""People who sign in. Facility staff and family depositors are both users of one custom
model, so depositor sign-up, depositor-inmate links and staff facility assignment can hang
off it without a later user-model migration."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A staff member (``is_staff``) or a family depositor."""

    email = models.EmailField("email address", blank=True, db_index=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
