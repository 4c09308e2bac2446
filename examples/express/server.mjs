// Runs the example: SLUICE_URL=sluice://127.0.0.1:6379 PORT=3000 node server.mjs
import { createApp } from './app.mjs';

const port = Number(process.env.PORT ?? 3000);
createApp({ sluiceUrl: process.env.SLUICE_URL }).listen(port, () => console.log(`listening on http://localhost:${port}`));
