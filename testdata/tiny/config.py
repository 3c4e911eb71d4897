"""Architecture and training settings of the tiny pipeline, in one place (export writes these into the
diffusers-style config files)."""

SEED = 20261201

DATASET_SIZE = 30000
CAPTIONS_PER_IMAGE = 3
HOLDOUT_SIZE = 400

VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": [16, 32, 64, 64],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
VAE_TRAINING = {"steps": 1200, "batch": 32, "learning_rate": 1e-3, "final_learning_rate": 5e-5,
                "kl_weight": 1e-4, "foreground_weight": 4.0}

TEXT_ENCODER = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "num_hidden_layers": 3,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    # vocab_size, bos/eos/pad ids are filled in from the tokenizer
}

UNET = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 1,
    "norm_num_groups": 16,
    "attention_head_dim": 16,
    "cross_attention_dim": 64,
}
UNET_TRAINING = {"steps": 2200, "batch": 192, "learning_rate": 1e-3, "final_learning_rate": 2e-5,
                 "warmup_steps": 100, "caption_dropout": 0.1, "min_snr_gamma": 5.0, "ema_decay": 0.999}
# --phase continue: more steps on the saved UNet (a fresh AdamW state, so a short warmup)
CONTINUE_TRAINING = {"steps": 1000, "learning_rate": 4e-4, "final_learning_rate": 1e-5, "warmup_steps": 50}

SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}
