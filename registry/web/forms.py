"""The forms of the web pages."""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError

from packages_core import types
from packages_core.models import CleanupRule, Membership
from packages_core.models.limits import CLEANUP_RULE_FIELDS
from packages_core.models.owners import OWNER_NAME_MAX_LENGTH, Visibility
from packages_core.models.tokens import Scope
from packages_core.models.webhooks import DEFAULT_EVENTS, EVENTS, FORMATS, GITEA

VISIBILITY_HELP = (
    "Public: anyone may pull and browse. Limited: signed-in users. Private: members only."
)


class AccessTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “CI pushes”.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.READ_PACKAGE],
        help_text="Write includes read.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Empty: never expires.",
    )


class CleanupRuleForm(forms.ModelForm):
    """One owner's cleanup rule; the view passes the rule with its owner set.

    The type is one an app registered; a saved rule keeps its type (a rule for
    another type is another rule), so the field is fixed once the rule exists.
    """

    type = forms.ChoiceField(label="Package type")

    class Meta:
        model = CleanupRule
        fields = CLEANUP_RULE_FIELDS
        labels = {
            "enabled": "Enabled",
            "keep_count": "Keep the most recent",
            "remove_days": "Remove versions older than (days)",
            "remove_unpulled_days": "Remove versions not pulled for (days)",
            "keep_pattern": "Keep versions matching",
            "remove_pattern": "Remove versions matching",
            "match_full_name": "Match image/version",
        }
        help_texts = {
            "enabled": "Cleanup runs apply only enabled rules; a preview works either way.",
            "keep_count": "The newest this many versions of each image always stay; 0: none.",
            "remove_days": "Only versions pushed longer ago than this go; 0: any age.",
            "remove_unpulled_days": (
                "Only versions nobody pulled for this many days go (one never pulled counts "
                "from its push), e.g. 30 for a mirror; empty: pulls do not matter."
            ),
            "keep_pattern": (
                "A regular expression, e.g. v\\d+\\.\\d+\\.\\d+ . Matching versions stay. "
                "It must match the whole version; case is ignored."
            ),
            "remove_pattern": (
                "A regular expression, e.g. .*-rc\\d+ or sha256:.* (untagged manifests). "
                "If set, only matching versions go; empty: every version may go."
            ),
            "match_full_name": (
                "Match the patterns against image/version, e.g. web/1.0, not the version alone."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = types.choices(self.instance.type)
        if self.instance.pk is not None:
            self.fields["type"].disabled = True

    def clean_type(self):
        # The form leaves out the owner, so Django does not check (owner, type) itself.
        type = self.cleaned_data["type"]
        rule = self.instance
        taken = CleanupRule.objects.filter(owner_id=rule.owner_id, type=type).exclude(pk=rule.pk)
        if taken.exists():
            raise ValidationError(
                f"{rule.owner.name} already has a cleanup rule for {type} packages; "
                "edit that one instead."
            )
        return type


class OrgSettingsForm(forms.Form):
    """An organisation's visibility and description; the services check and save them."""

    visibility = forms.ChoiceField(
        choices=Visibility.choices, widget=forms.RadioSelect, help_text=VISIBILITY_HELP
    )
    description = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown under the organisation's name.",
    )


class NewOrgForm(OrgSettingsForm):
    # The name's rules (characters, reserved names, taken) are the service's; its
    # answer becomes this field's error.
    name = forms.CharField(
        max_length=OWNER_NAME_MAX_LENGTH,
        help_text="Starts every image path: HOST/NAME/IMAGE. Letters, digits and . _ -",
    )
    field_order = ["name", "visibility", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["visibility"].initial = Visibility.PUBLIC


class AddMemberForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.READ)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class SignUpForm(forms.Form):
    """A new account; the user and its owner are made by the owners service."""

    username = forms.CharField(
        label="User name",
        max_length=OWNER_NAME_MAX_LENGTH,
        help_text="Also your namespace: HOST/NAME/IMAGE. Letters, digits and . _ -",
    )
    email = forms.EmailField(required=False, help_text="Optional.")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password1")
        if password and password != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif password:
            User = get_user_model()
            # An unsaved user, so the validators can compare the password with its name.
            user = User(**{User.USERNAME_FIELD: cleaned.get("username", "")})
            if cleaned.get("email") and User.get_email_field_name() != User.USERNAME_FIELD:
                setattr(user, User.get_email_field_name(), cleaned["email"])
            try:
                # The site's AUTH_PASSWORD_VALIDATORS, as Django's own forms apply them.
                password_validation.validate_password(password, user)
            except ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class WebhookForm(forms.Form):
    """A webhook's fields as typed; the webhooks service checks them and saves.

    The secret is never rendered back: left empty on a saved webhook it stays as it was,
    and "remove the secret" is a box of its own.
    """

    url = forms.CharField(
        label="URL", max_length=2000, help_text="Where events are POSTed: http:// or https://."
    )
    secret = forms.CharField(
        required=False,
        max_length=255,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs every body (X-Hub-Signature-256). Optional.",
    )
    remove_secret = forms.BooleanField(
        required=False, label="Remove the secret", help_text="Bodies are then signed with ''."
    )
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENTS],
        widget=forms.CheckboxSelectMultiple,
        initial=DEFAULT_EVENTS,
        help_text="Pull events are a row written on every manifest pull: off unless needed.",
    )
    name_filter = forms.CharField(
        label="Image names",
        required=False,
        max_length=255,
        help_text="A glob, e.g. app/* or *-dev; empty: every image.",
    )
    format = forms.ChoiceField(
        choices=[(name, name) for name in FORMATS],
        initial=GITEA,
        widget=forms.RadioSelect,
        help_text="gitea: Gitea's package webhook; distribution: CNCF Distribution's events.",
    )
    is_active = forms.BooleanField(
        required=False, initial=True, label="Active", help_text="An inactive webhook hears nothing."
    )

    def __init__(self, *args, webhook=None, **kwargs):
        if webhook is not None:
            kwargs.setdefault(
                "initial",
                {
                    "url": webhook.url,
                    "events": webhook.events,
                    "name_filter": webhook.name_filter,
                    "format": webhook.format,
                    "is_active": webhook.is_active,
                },
            )
        super().__init__(*args, **kwargs)
        if webhook is None:
            del self.fields["remove_secret"]
        elif webhook.has_secret:
            self.fields["secret"].help_text = "Set. Leave empty to keep it; type one to replace it."

    def clean(self):
        data = super().clean()
        if data.get("secret") and data.get("remove_secret"):
            raise forms.ValidationError("Type a new secret or remove it, not both.")
        return data

    def changes(self) -> dict:
        """The cleaned fields as the service's keywords (secret None: keep the saved one)."""
        data = dict(self.cleaned_data)
        if data.pop("remove_secret", False):
            data["secret"] = ""
        elif not data["secret"] and "remove_secret" in self.fields:
            data["secret"] = None
        return data
