"""Every table the application keeps, in one metadata: Alembic and the schema tests read it.

Each feature's rows live in their own module; importing them registers their tables.
"""

from __future__ import annotations

from callcenter.features.accounts import models as account_models
from callcenter.features.agents import models as agent_models
from callcenter.features.callbacks import models as callback_models
from callcenter.features.calls import dead_letter_models
from callcenter.features.calls import models as call_models
from callcenter.features.campaigns import models as campaign_models
from callcenter.features.compliance import models as compliance_models
from callcenter.features.evaluations import models as evaluation_models
from callcenter.features.rating import models as rating_models
from callcenter.features.recordings import models as recording_models
from callcenter.features.reports import agent_models as agent_report_models
from callcenter.features.reports import campaign_models as campaign_report_models
from callcenter.features.reports import models as report_models
from callcenter.store import asterisk_log
from callcenter.store.models import Base

# calls with their attempts, FAQ outcomes, survey answers and transfers; callback requests;
# outbound campaigns, the do-not-call list and the consent ledger; users and sessions; agents
# and their log; refused call records; how far Asterisk's own log was imported
ROW_MODULES = (call_models, callback_models, campaign_models, compliance_models,
               account_models, agent_models, dead_letter_models, asterisk_log,
               recording_models, evaluation_models,  # call recordings and their evaluations
               report_models,  # the report aggregates and what each call added to them
               agent_report_models, campaign_report_models,  # agents' and campaigns' too
               rating_models)  # tariffs, their rates and the calls' priced legs
metadata = Base.metadata

__all__ = ["ROW_MODULES", "metadata"]
