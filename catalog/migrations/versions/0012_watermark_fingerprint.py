"""provenance marks: each video rendition's invisible watermark payload and perceptual fingerprint

``rendition_marks``: one row per (raw clip, preset), reserved before the rendition is encoded; the 32-bit
payload the watermark carries (unique), the method and its parameters, the rendition's read-back QC, the
brand's watermark requirement, the fingerprint's algorithm. ``fingerprint_hashes``: a 64-bit perceptual hash
per sampled frame, with an indexed 16-bit prefix for lookup. Renditions made before this revision have no row:
they carry no watermark and no fingerprint.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 04:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'rendition_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clip_id', sa.Integer(), nullable=False),
        sa.Column('preset', sa.String(length=32), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.BigInteger(), nullable=True),
        sa.Column('method', sa.String(length=32), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('readback', sa.JSON(), nullable=True),
        sa.Column('fingerprint', sa.JSON(), nullable=True),
        sa.Column('policy', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_rendition_marks_asset_id_assets')),
        sa.ForeignKeyConstraint(['clip_id'], ['assets.id'], name=op.f('fk_rendition_marks_clip_id_assets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rendition_marks')),
        sa.UniqueConstraint('asset_id', name=op.f('uq_rendition_marks_asset_id')),
        sa.UniqueConstraint('clip_id', 'preset', name=op.f('uq_rendition_marks_clip_id_preset')),
        sa.UniqueConstraint('payload', name=op.f('uq_rendition_marks_payload')),
    )
    with op.batch_alter_table('rendition_marks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rendition_marks_clip_id'), ['clip_id'], unique=False)
    op.create_table(
        'fingerprint_hashes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('mark_id', sa.Integer(), nullable=False),
        sa.Column('t', sa.Float(), nullable=False),
        sa.Column('hash', sa.BigInteger(), nullable=False),
        sa.Column('prefix', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['mark_id'], ['rendition_marks.id'],
                                name=op.f('fk_fingerprint_hashes_mark_id_rendition_marks')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fingerprint_hashes')),
    )
    with op.batch_alter_table('fingerprint_hashes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fingerprint_hashes_mark_id'), ['mark_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fingerprint_hashes_prefix'), ['prefix'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('fingerprint_hashes')
    op.drop_table('rendition_marks')
