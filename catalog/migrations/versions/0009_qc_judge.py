"""qc judge: each QC result records which detector produced it

``qc_results.judge``: the detector's package and version and the sha256 of each of its weight files (NudeNet,
RapidOCR, a configured classifier), or the wanflow version for the rules that need no model. Rows written
before this revision keep NULL: their judge was not recorded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('qc_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('judge', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('qc_results', schema=None) as batch_op:
        batch_op.drop_column('judge')
