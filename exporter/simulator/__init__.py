"""Simulated provider APIs: one aiohttp application that plays TheirStack, Windsurf, FullEnrich
and the APIs of the http_json presets.

The `demo` command and the tests talk to it over loopback exactly as the exporter talks to the
real services. Each simulated API is mounted under its own prefix (see :data:`SIMULATED_APIS`)::

    /theirstack          GET  /v0/billing/credit-balance, GET /v0/teams/credits_consumption
    /windsurf/api/v1     POST /GetTeamCreditBalance, /UserPageAnalytics, /CascadeAnalytics
    /fullenrich/api/v2   GET  /account/credits
    /openrouter/api/v1   GET  /credits                      (Bearer)
    /deepl, /deepl-free  GET  /v2/usage                     (DeepL-Auth-Key; ":fx" keys: free)
    /elevenlabs          GET  /v1/user/subscription         (xi-api-key)
    /hunter/v2           GET  /account                      (?api_key=)
    /twilio              GET  /2010-04-01/Accounts/{sid}/Balance.json   (Basic sid:token)
    /deepseek            GET  /user/balance                 (Bearer)
    /serpapi             GET  /account.json                 (?api_key=)
    /telnyx/v2           GET  /balance                      (Bearer)
    /firecrawl           GET  /v2/team/credit-usage         (Bearer)
    /sendgrid            GET  /v3/user/credits              (Bearer)
    /vonage              GET  /account/get-balance          (Basic key:secret)
    /plivo               GET  /v1/Account/{auth_id}/        (Basic auth_id:token)
    /moonshot            GET  /v1/users/me/balance          (Bearer)
    /zerobounce          GET  /v2/getcredits                (?api_key=; bad key: Credits -1)
    /crustdata           GET  /user/credits                 (Bearer)
    /lusha               GET  /v3/account/usage             (api_key header)
    /boldsign            GET  /v1/plan/apiCreditsCount      (X-API-KEY)
    /dropcontact         GET  /v1/account/credits           (X-Access-Token)
    /anticaptcha         POST /getBalance                   (clientKey in the body; errorId)

Accounts are keyed by their (fake) API key. Their state is set with :meth:`Simulator.add_account`
and :meth:`Simulator.update`, or over HTTP under ``/_sim/`` from another process (module
``control``). Besides the provider's own fields, every account takes the common misbehaviour
switches (module ``account``): ``latency``, ``fail``, ``paths_fail``, ``revoked``,
``malformed`` (see :data:`MALFORMED_MODES`), ``rate_limit_per_second`` and
``rate_limit_per_minute``.

Time is simulated: the clock is the real (or injected) clock plus an offset that
:meth:`Simulator.advance` moves forward. Balances burn lazily from the time elapsed since an
account was last looked at, so no background task runs and ``advance(86400)`` rolls days over.

The modules::

    server      Simulator: the aiohttp app, request dispatch and call counting
    state       the accounts, the simulated clock and the call counts (thread-safe)
    control     the /_sim/ control API
    account     SimAccount, the state every account shares; MALFORMED_MODES
    api         SimulatedApi, Endpoint, Call, Reply: what a simulated API declares
    auth        how APIs read a key (Bearer, a header, a query parameter, Basic)
    limits      rate limits and RateLimit headers
    faults      injected failures and malformed answers
    fields      converters of account fields
    clock       simulated-time arithmetic (burn, dates)
    registry    SIMULATED_APIS, the one list of simulated APIs
    theirstack, windsurf, fullenrich, presets/<preset name>: one simulated API each
    cascade     Windsurf's CascadeAnalytics rows and answers (for windsurf)
    demo        the demo's accounts
    thread      SimulatorThread: a simulator in a thread, for synchronous code
    standalone  python -m exporter.simulator

Adding a simulated API (``presets/openrouter.py`` is the smallest example):

1. Write one module, ``presets/<name>.py`` for an http_json preset (named like the preset's
   YAML file), else ``<provider>.py``. In it: a :class:`~.account.SimAccount` subclass with a
   unique ``provider`` name and its fields, each with a converter from :mod:`.fields` (and
   ``advance_state`` if its credits burn with time); its endpoint handlers (account +
   :class:`~.api.Call` -> :class:`~.api.Reply`, answering the shapes the API's docs allow); its
   error-body function; and ``API = SimulatedApi(...)`` with the mount point, the endpoints and
   a credential reader from :mod:`.auth`.
2. Add ``<module>.API`` to the list in :mod:`.registry` (tests/unit/test_simulator_registry.py
   fails until it is there).

A new endpoint of an API already simulated is one more ``Endpoint`` in its module's ``API``.
"""

from .account import MALFORMED_MODES
from .api import SimulatedApi
from .demo import DEMO_ACCOUNTS
from .registry import SIMULATED_APIS
from .server import Simulator
from .standalone import main
from .thread import SimulatorThread

__all__ = [
    "DEMO_ACCOUNTS",
    "MALFORMED_MODES",
    "SIMULATED_APIS",
    "SimulatedApi",
    "Simulator",
    "SimulatorThread",
    "main",
]
