"""The roofline's byte model counts what each variant's memory-bound work must move."""

import dataclasses

from experiments import roofline
from sae.config import ModelConfig

B, D, M, K = 16, 8, 64, 4


def test_dense_topk_bytes_are_the_optimizer_pass_and_the_decoder_rows():
  cfg = ModelConfig(kind="topk", d_model=D, width=M, k=K, aux_k=0)
  params = 2 * M * D + M + D                      # encoder, decoder, b_enc, b_pre
  assert roofline.num_params(cfg) == params
  assert roofline.step_bytes(cfg, B) == {"optimizer": 7 * 4 * params, "decoder": 4 * 4 * B * K * D}
  sparse = roofline.step_bytes(dataclasses.replace(cfg, encoder_grad="sparse"), B)
  assert sparse["encoder_grad"] == 2 * 4 * B * K * D


def test_switch_pays_dispatch_and_combine_in_slot_space():
  cfg = ModelConfig(kind="switch", d_model=D, width=M, k=K, num_experts=4, capacity_factor=1.0,
                    dispatch="capacity", decoder="sparse", aux_k=0)
  got = roofline.step_bytes(cfg, B)
  assert got["dispatch"] == 2 * 2 * 4 * B * D    # capacity 1.0: B slots in all
  assert got["decoder"] == 4 * 4 * B * K * D
  assert got["optimizer"] == 7 * 4 * roofline.num_params(cfg)


def test_floor_adds_compute_and_memory_time():
  assert roofline.floor_s(2e9, 1e9, 1e11, 1e10) == 0.02 + 0.1
