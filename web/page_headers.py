"""Headers of the pages a browser shows (the dashboard, the reference page): no other site
may frame them (a click on a framed dashboard's button would act), nothing is sniffed into
another type, no address leaks to the sites they link to, and the dashboard's pages, which
show deliveries' bodies, are not kept by the browser once the operator has signed out."""

from __future__ import annotations

from werkzeug.wrappers import Response

_PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def protected(response: Response) -> Response:
    for name, value in _PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return protected(response)
