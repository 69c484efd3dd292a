"""The dashboard's routes, one router per concern; :func:`zkfl.dashboard.app.create_app`
includes them in the order their paths must be matched.

Each module's ``router(ctx)`` builds a fresh :class:`fastapi.APIRouter` bound to one app's
:class:`zkfl.dashboard.context.DashboardContext`; the static files need no state.
"""
