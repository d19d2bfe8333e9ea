"""A Stripe stand-in served over HTTP by the sandbox: the official `stripe` SDK talks to it with only its API
base changed (`…/sandbox/stripe`), and webhooks arrive signed exactly as Stripe signs them.

It keeps customers, products, prices (lookup keys), Checkout and portal sessions, subscriptions (trials,
prorations, schedules, cancellation), invoices and payments, billing meters and meter events, events and
webhook endpoints in memory, per account; a control API (`…/sandbox/control/stripe`) completes checkouts,
moves the clock, scripts declined payments and delivers events in any order or many times at once.
Everything an account generates comes from its seed.
"""

from app.sandbox.stripe._account import API_VERSION, Account
from app.sandbox.stripe._app import stripe_mounts
from app.sandbox.stripe._delivery import signature_header
from app.sandbox.stripe._standin import StandIn

__all__ = ["API_VERSION", "Account", "StandIn", "signature_header", "stripe_mounts"]
