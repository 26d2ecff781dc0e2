"""user locale: each dashboard account may choose its language

``users.locale``: ``en`` or ``ja`` set with ``wanflow users set-locale``; NULL (every row written before this
revision) means the browser's Accept-Language, else the deployment's WANFLOW_LOCALE.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
