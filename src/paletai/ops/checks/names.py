"""The names of the checks, shared by the checks that record them and `migrate report`.

A check's name is how the report finds its evidence: renaming one here renames it on both sides.
Names ending in ": " or a space are prefixes (the rest is a count, an endpoint or a file).
"""

from __future__ import annotations

# migrate check (Phase 4); HEALTH and the games checks are also recorded by migrate load.
HEALTH = "health"
DOCS_SWAGGER = "docs: Swagger UI"
DOCS_OPENAPI = "docs: openapi.json endpoints"
AUTH_REGISTER = "auth: register"
AUTH_LOGIN_JSON = "auth: login (JSON)"
AUTH_LOGIN_FORM = "auth: login (OAuth2 form)"
AUTH_ME = "auth: /auth/me"
GAMES_CREATE = "games: create"
GAMES_GENERATION = "games: generation"
GAMES_THE_GAME = "games: the game"
IMAGE_COVER = "image: cover"
PLAY_SANDBOXED = "play: sandboxed HTML"
FEED_LISTED = "feed: the game is listed"
LIKES = "likes: like + unlike"
NOTIFICATIONS = "notifications: subscribe"
CLEANUP_GAME = "cleanup: delete the test game"

# migrate dns (Phase 5)
DNS_RESOLVE = "dns: resolve host"
DNS_POINTS_AT_TARGET = "dns: points at target"
DNS_TTL = "dns: TTL lowered"
HTTP_ANSWERS_ON_HOST = "http: the app answers on host"

# migrate load (Phase 6): GAMES_CREATE is followed by the number of games.
GAMES_IMAGES = "games: images"
LOAD_PREFIX = "load: "  # + the endpoint: feed, game, health
LOAD_FEED = LOAD_PREFIX + "feed"
LOAD_ALL_DONE = "load: all requests done"
LOAD_AVERAGE = "load: average response time < "  # + the limit
CLEANUP_GAMES = "cleanup: delete the test games"

# settings export | diff | apply: SETTINGS_VALID is followed by " (FILE)".
SETTINGS_VALID = "settings valid"

# deploy verify (Phase 1 "Verify Infrastructure" and the post-migration sections)
INFRA_GROUP = "infra: resource group"
INFRA_PLAN = "infra: app service plan"
INFRA_APP = "infra: web app running"
INFRA_STORAGE = "infra: storage account"
INFRA_CONTAINER = "infra: container public"
INFRA_INSIGHTS = "infra: application insights"
INFRA_INSIGHTS_SETTING = "infra: insights connection string"
INFRA_HEALTH_CHECK = "infra: health check path"
ALERT_ACTION_GROUP = "alerts: action group"
ALERT_PREFIX = "alert: "  # + what it watches
ALERT_HTTP_5XX = ALERT_PREFIX + "http 5xx"
ALERT_RESPONSE_TIME = ALERT_PREFIX + "response time"
ALERT_AVAILABILITY = ALERT_PREFIX + "availability"
ALERT_CPU = ALERT_PREFIX + "cpu"
ALERT_MEMORY = ALERT_PREFIX + "memory"
ALERT_DISK = ALERT_PREFIX + "disk"
ALERT_WEB_TEST = "alerts: availability test"
COST_BUDGET = "cost: budget"
COST_BUDGET_NOTIFICATIONS = "cost: budget notifications"
SECURITY_HTTPS_ONLY = "security: https only"
SECURITY_IDENTITY = "security: managed identity"
SECURITY_BLOB_ROLE = "security: blob data role"
SECURITY_CORS = "security: cors"
SECURITY_IP_RESTRICTIONS = "security: ip restrictions"

# deploy domain add (Phase 5), followed by the DNS_* and HTTP_ANSWERS_ON_HOST checks above.
DOMAIN_HOSTNAME = "domain: hostname added"
DOMAIN_CERTIFICATE = "domain: managed certificate"
DOMAIN_BINDING = "domain: SNI binding"

# migrate preflight (Pre-Migration): PREFLIGHT_AI_KEY is followed by the provider's name.
PREFLIGHT_AZ_SIGNED_IN = "az: signed in"
PREFLIGHT_AZ_TENANT = "az: tenant"
PREFLIGHT_AZ_SUBSCRIPTION = "az: subscription visible"
PREFLIGHT_AZ_ROLE = "az: Contributor or Owner"
PREFLIGHT_MONGODB = "mongodb: connect + authenticate"
PREFLIGHT_CHANGE_STREAMS = "mongodb: change streams"
PREFLIGHT_AI_KEY = "ai key: "  # + openai, azure-openai, anthropic
PREFLIGHT_ONESIGNAL = "onesignal: credentials"
PREFLIGHT_STORAGE = "storage: account answers"

# migrate inventory (Pre-Migration: Old Environment Documentation)
INVENTORY_SETTINGS = "inventory: app settings exported"
INVENTORY_DOMAINS = "inventory: custom domains and TLS"
INVENTORY_PLAN = "inventory: plan SKU/tier"
INVENTORY_TRAFFIC = "inventory: daily traffic"
INVENTORY_INTEGRATIONS = "inventory: third-party integrations"

# migrate insights (Phase 6: Application Insights)
INSIGHTS_COMPONENT = "insights: Application Insights found"
INSIGHTS_REQUESTS = "insights: requests arriving"
INSIGHTS_NO_ERRORS = "insights: no errors or exceptions"
INSIGHTS_RESPONSE_TIME = "insights: response times < "  # + the limit

# migrate logs (Phase 6: Log Streaming)
LOGS_ACTIVITY = "logs: normal activity"
LOGS_NO_ERRORS = "logs: no error messages"
LOGS_DATABASE = "logs: database connections"
