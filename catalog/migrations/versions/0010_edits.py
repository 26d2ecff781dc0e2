"""edits: an edited clip's job links to its source clip; a brief freezes the model of its edits

``generation_jobs.edit_of_id``: the raw clip an edit job changes (NULL for generation from scratch and for an
edit of a plain file, whose path and sha256 stay in the job's params). ``briefs.edit_version_id``: the VACE
model version a brief's edit items were planned with, frozen at its first plan like ``model_version_id``.
Masks are assets of kind ``mask`` (kinds are stored as strings: no schema change).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit_of_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_generation_jobs_edit_of_id'), ['edit_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_generation_jobs_edit_of_id_assets'), 'assets', ['edit_of_id'], ['id'])
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit_version_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.drop_column('edit_version_id')
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_generation_jobs_edit_of_id_assets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_generation_jobs_edit_of_id'))
        batch_op.drop_column('edit_of_id')
