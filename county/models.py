"""County tables: rule categories, star thresholds, and the dashboard's closed-day caches."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, db, utcnow


class PeriodKind(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class RuleCategory(db.Model):
    """One of the scheme's categories (生态环保, 公益事业, ...); a star is won per category."""

    __tablename__ = "rule_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # The order categories are listed in, on pages, notices and spreadsheets.
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    thresholds: Mapped[list[StarThreshold]] = relationship(
        back_populates="category", cascade="all, delete-orphan", lazy="selectin"
    )

    def threshold_for(self, period_kind: str) -> int | None:
        for threshold in self.thresholds:
            if threshold.period_kind == period_kind:
                return threshold.points
        return None


class StarThreshold(db.Model):
    """Points a household must earn in one category within a period to win its star."""

    __tablename__ = "star_thresholds"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("rule_categories.id", ondelete="CASCADE"), index=True
    )
    period_kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[RuleCategory] = relationship(back_populates="thresholds")

    __table_args__ = (
        UniqueConstraint("category_id", "period_kind"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("period_kind IN ('month', 'quarter', 'year')", name="period_kind_known"),
    )


class DayTotal(db.Model):
    """A closed local day's ledger figures, folded from the transfers for the dashboard.

    A cache, never an input: a day is stored once it ended a day ago, and reused only while
    no transfer after `through_transfer_id` touches it (a late posting dated in it, or a
    correction of one of its transfers); otherwise it is folded again. Scope "*" holds the
    county's awards and penalties, scope "shop:<code>" that shop's redemptions net of
    refunds and their count.
    """

    __tablename__ = "county_day_totals"

    tz: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    awarded: Mapped[int] = mapped_column(BigInteger, default=0)
    penalised: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    redemptions: Mapped[int] = mapped_column(Integer, default=0)
    through_transfer_id: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GoodsDay(db.Model):
    """Goods sold minus returned on one closed business day, per shop and product.

    A cache for the dashboard's top goods, folded from sales and returns and refolded when
    a sale or return after the watermarks is dated in the day. Product 0 marks a day with
    no sales at all. No foreign keys: it is rebuilt from the counter's tables, never read
    by them.
    """

    __tablename__ = "county_goods_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shop_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qty: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    through_sale_id: Mapped[int] = mapped_column(BigInteger)
    through_return_id: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
