"""Template helpers of the web pages: `ago` (how long ago, in words) and `site_name`."""

from django import template
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
