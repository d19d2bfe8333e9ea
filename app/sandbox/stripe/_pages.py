"""The hosted pages behind the URLs the API hands out (Checkout, the customer portal, invoices), so a person
trying the demo can pay, be declined, cancel or resume in a browser. Knowing the URL is the access, as
with Stripe's own hosted pages."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

from app.sandbox.stripe import _billing as billing
from app.sandbox.stripe._errors import StripeApiError
from app.sandbox.stripe._http import HttpRequest, HttpResponse, Route, html_response, redirect, route
from app.sandbox.stripe._ops_checkout import complete_session
from app.sandbox.stripe._ops_subscriptions import apply_update
from app.sandbox.stripe._standin import StandIn

STYLE = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;line-height:1.5}button{margin:.25rem}"


def _page(title: str, body: str) -> HttpResponse:
    return html_response(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}"
        "<p><small>Stripe stand-in (sandbox): no real money moves.</small></p></body></html>"
    )


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def _form(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode("utf-8", "replace")))


class Pages:
    def __init__(self, standin: StandIn) -> None:
        self.standin = standin

    def _find(self, object_id: str) -> tuple[Any, Any] | None:
        for acct in self.standin.accounts.values():
            found = acct.find(object_id)
            if found is not None:
                return acct, found
        return None

    async def checkout(self, request: HttpRequest) -> HttpResponse:
        found = self._find(request.path_params["id"])
        if found is None:
            return _page("Checkout session not found", "<p>This link is not valid.</p>")
        acct, session = found
        error = ""
        if request.method == "POST":
            choice = _form(request).get("action", "pay")
            if choice == "cancel" and session.cancel_url:
                return redirect(session.cancel_url)
            card = {"pay": "pm_card_visa", "decline": "pm_card_chargeCustomerFail", "skip": None}.get(
                choice, "pm_card_visa"
            )
            try:
                complete_session(acct, session, card=card)
            except StripeApiError as exc:
                error = f"<p role='alert'><strong>{html.escape(exc.message)}</strong></p>"
            finally:
                self.standin.deliverer.kick(acct)
            if not error:
                target = (session.success_url or "").replace("{CHECKOUT_SESSION_ID}", session.id)
                return redirect(target) if target else _page("Payment complete", "<p>You can close this page.</p>")
        if session.status != "open":
            return _page("Checkout", f"<p>This Checkout session is {html.escape(session.status)}.</p>")
        rows = "".join(
            f"<li>{html.escape(billing.product_name(acct, acct.prices[li.price]))} × {li.quantity or 1}: "
            f"{_money(acct.prices[li.price].amount_for(li.quantity or 1), session.currency)} / "
            f"{html.escape(acct.prices[li.price].interval or '')}</li>"
            for li in session.line_items
        )
        trial = session.subscription_data.get("trial_period_days")
        note = f"<p>{trial}-day free trial, then billed monthly.</p>" if trial else ""
        skip = (
            "<button name='action' value='skip'>Start trial without a card</button>"
            if trial and session.payment_method_collection == "if_required"
            else ""
        )
        return _page(
            "Checkout",
            f"{error}<ul>{rows}</ul>{note}<form method='post'>"
            "<button name='action' value='pay'>Pay with card 4242</button>"
            "<button name='action' value='decline'>Pay with a card that is declined</button>"
            f"{skip}<button name='action' value='cancel'>Back</button></form>",
        )

    async def portal(self, request: HttpRequest) -> HttpResponse:
        found = self._find(request.path_params["id"])
        if found is None:
            return _page("Portal session not found", "<p>This link is not valid.</p>")
        acct, session = found
        if request.method == "POST":
            form = _form(request)
            sub = acct.subscriptions.get(form.get("subscription", ""))
            if sub is not None and sub.customer == session.customer:
                try:
                    if form.get("action") == "cancel":
                        apply_update(acct, sub, {"cancel_at_period_end": True})
                    elif form.get("action") == "resume":
                        apply_update(acct, sub, {"cancel_at_period_end": False})
                    elif form.get("action") == "card":
                        apply_update(acct, sub, {"default_payment_method": "pm_card_visa"})
                except StripeApiError as exc:
                    return _page("Customer portal", f"<p role='alert'>{html.escape(exc.message)}</p>")
                finally:
                    self.standin.deliverer.kick(acct)
            return redirect(f"{request.base_url}/portal/{session.id}")
        subs = [s for s in acct.subscriptions.values() if s.customer == session.customer and s.status != "canceled"]
        rows = []
        for sub in subs:
            name = html.escape(billing.product_name(acct, acct.prices[sub.items[0].price]))
            action = "resume" if sub.cancel_at_period_end else "cancel"
            label = "Don't cancel" if sub.cancel_at_period_end else "Cancel at period end"
            rows.append(
                f"<li>{name}: {html.escape(sub.status)}{' (cancels at period end)' * sub.cancel_at_period_end}"
                f"<form method='post'><input type='hidden' name='subscription' value='{sub.id}'>"
                f"<button name='action' value='{action}'>{label}</button>"
                "<button name='action' value='card'>Use a new card (4242)</button></form></li>"
            )
        back = f"<p><a href='{html.escape(session.return_url or '')}'>Return</a></p>"
        return _page("Customer portal", f"<ul>{''.join(rows) or '<li>No subscriptions</li>'}</ul>{back}")

    async def invoice(self, request: HttpRequest) -> HttpResponse:
        found = self._find(request.path_params["id"])
        if found is None:
            return _page("Invoice not found", "<p>This link is not valid.</p>")
        _, inv = found
        lines = "".join(
            f"<li>{html.escape(li.description)}: {_money(li.amount, inv.currency)}</li>" for li in inv.lines
        )
        return _page(
            f"Invoice {inv.number or inv.id}",
            f"<p>Status: {html.escape(inv.status)}; due {_money(inv.amount_due, inv.currency)}, "
            f"paid {_money(inv.amount_paid, inv.currency)}</p><ul>{lines}</ul>",
        )

    def routes(self) -> list[Route]:
        return [
            route("GET", "/checkout/{id}", self.checkout),
            route("POST", "/checkout/{id}", self.checkout),
            route("GET", "/portal/{id}", self.portal),
            route("POST", "/portal/{id}", self.portal),
            route("GET", "/invoices/{id}", self.invoice),
            route("GET", "/invoices/{id}/pdf", self.invoice),
        ]
