"""Template helpers of the web pages: `ago` (how long ago, in words), `site_name`, `login_url`."""

from django import template
from django.conf import settings
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.timesince import timesince

from registry.conf import registry_settings

register = template.Library()


@register.filter
def ago(value) -> str:
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.simple_tag
def site_name() -> str:
    """What the pages call the site: REGISTRY["SITE_NAME"]."""
    return registry_settings.SITE_NAME


@register.simple_tag
def login_url() -> str:
    """The site's sign-in page (settings.LOGIN_URL): the host's own, if it has one."""
    return resolve_url(settings.LOGIN_URL)
