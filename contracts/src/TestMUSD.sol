// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A stand-in for Mezo USD on a local chain: the same OpenZeppelin v5 ERC-20
/// (18 decimals, standard Transfer events) with an open mint so tests can fund wallets.
contract TestMUSD is ERC20 {
    constructor() ERC20("Mezo USD (test)", "MUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Several transfers to one wallet in one transaction, as a router might make.
    function transferInParts(address to, uint256[] calldata parts) external {
        for (uint256 i = 0; i < parts.length; i++) {
            _transfer(msg.sender, to, parts[i]);
        }
    }
}
