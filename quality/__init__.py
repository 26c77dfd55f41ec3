"""Service quality read from the store: the dashboard's figures (self-service completion,
transfer to a human, IVR interception, abandonment, response and resolution times, CSAT, NPS,
review agreement) grouped by channel, intent, day, hour and agent, with the conversations behind
every figure; the refund report and refund records; problem analytics (tickets by category and
SKU, knowledge-base misses, IVR handling time and nuisance calls, :mod:`quality.analytics`); and
the review queue where quality staff score bot answers and
agents' corrections (``quality_reviews``).

Owns the definitions of those figures and the review records. Must not know HTTP, channels'
wire formats or the dialogue's wording: it reads events, messages, surveys, tickets and
after-sales requests as the other packages wrote them.
"""

from quality.metrics import DIMENSIONS, METRICS, MetricSpec, QualityFilter, QualityReport, quality_report
from quality.refunds import refund_report
from quality.reviews import ReviewQueue

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "MetricSpec",
    "QualityFilter",
    "QualityReport",
    "ReviewQueue",
    "quality_report",
    "refund_report",
]
