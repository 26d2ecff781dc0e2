"""delivery: rendition presets, C2PA provenance per asset, publication status/attempts/error

Renditions are now identified by preset (two 16:9 presets exist), so the unique key of assets moves
from (parent, kind, aspect) to (parent, kind, preset); rows made before get preset "legacy-<aspect>"
or "poster". Publications record failed attempts (status "failed" + error) instead of no row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:11:45.628235

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preset', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provenance', sa.JSON(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_assets_parent_id_kind_aspect'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_assets_parent_id_kind_preset'), ['parent_id', 'kind', 'preset'])
    op.execute("UPDATE assets SET preset = 'legacy-' || replace(aspect, ':', 'x') "
               "WHERE kind = 'rendition' AND preset IS NULL AND aspect IS NOT NULL")
    op.execute("UPDATE assets SET preset = 'poster' WHERE kind = 'poster' AND preset IS NULL")

    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='delivered', nullable=False))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_publications_status'), ['status'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publications_status'))
        batch_op.drop_column('attempts')
        batch_op.drop_column('error')
        batch_op.drop_column('status')

    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_assets_parent_id_kind_preset'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_assets_parent_id_kind_aspect'), ['parent_id', 'kind', 'aspect'])
        batch_op.drop_column('provenance')
        batch_op.drop_column('preset')

